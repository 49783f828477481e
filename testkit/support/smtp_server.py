# An SMTP server for tests (Python's aiosmtpd): stores each message as JSON in the directory
# given, refuses recipients named refuse@..., accepts AUTH as lookout / right-password, and
# writes the port it listens on to DIR/port.
import asyncio, email, email.policy, json, os, sys, time
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

out = sys.argv[1]

class Store:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refuse@"):
            return "550 5.1.1 <%s>: recipient refused" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # Decoded as a mail client would: headers and the body's transfer encoding.
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        # Every leaf part of a multipart message (the status page's reports: text, HTML and
        # a CSV attachment); the body is the plain-text part.
        parts = [{"content_type": p.get_content_type(), "filename": p.get_filename(),
                  "content": p.get_content()} for p in parsed.walk() if not p.is_multipart()]
        plain = next((p["content"] for p in parts if p["content_type"] == "text/plain"), "")
        message = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "headers": {k: str(v) for k, v in parsed.items()},
            "content_type": parsed.get_content_type(),
            "charset": parsed.get_content_charset(),
            "body": plain if parsed.is_multipart() else parsed.get_content(),
            "parts": parts,
        }
        # Named by arrival, so the test reads them in order.
        path = os.path.join(out, "%020d" % time.time_ns())
        with open(path + ".tmp", "w") as f:
            json.dump(message, f)
        os.rename(path + ".tmp", path + ".json")
        return "250 2.0.0 stored"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"lookout", b"right-password")
    # handled=False: aiosmtpd itself answers 535 to a refusal.
    return AuthResult(success=ok, handled=False)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Store(), hostname="smtp.test", authenticator=authenticate,
                     auth_require_tls=False),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(os.path.join(out, "port.tmp"), "w") as f:
        f.write(str(port))
    os.rename(os.path.join(out, "port.tmp"), os.path.join(out, "port"))
    await server.serve_forever()

asyncio.run(main())
