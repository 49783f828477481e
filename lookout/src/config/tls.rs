//! `tls:`: TLS on Lookout's own listeners (the collector's, the alerter's and the status
//! page's) and the CA that their clients (agents, the alerter and the status page calling the
//! collector) trust beside the public roots. It crosses sections, so the binary owns it.

use lookout_api::tls::{ServerTls, Trust};
use lookout_conf::{Located, Report, Spanned};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// The certificate chain the listeners serve (PEM).
    pub cert: Option<Spanned<String>>,
    /// Its private key (PEM).
    pub key: Option<Spanned<String>>,
    /// The CA that signed the listeners' certificates, when it is not a public one.
    pub ca: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `Some`: the listeners serve HTTPS.
    pub server: Option<ServerTls>,
    pub trust: Trust,
}

fn loc(v: &Option<Spanned<String>>) -> Option<Located> {
    v.as_ref().and_then(Spanned::loc)
}

pub fn validate(raw: Option<RawTls>, report: &mut Report) -> TlsConfig {
    let Some(raw) = raw else {
        return TlsConfig::default();
    };
    let server = match (&raw.cert, &raw.key) {
        (Some(cert), Some(key)) => {
            match ServerTls::from_pem_files(cert.value.as_ref(), key.value.as_ref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    report(loc(&raw.cert), "tls.cert", e.to_string());
                    None
                }
            }
        }
        (Some(_), None) => {
            report(
                loc(&raw.cert),
                "tls.cert",
                "needs `tls.key` beside it".into(),
            );
            None
        }
        (None, Some(_)) => {
            report(
                loc(&raw.key),
                "tls.key",
                "needs `tls.cert` beside it".into(),
            );
            None
        }
        (None, None) => None,
    };
    let trust = match &raw.ca {
        Some(ca) => Trust::from_pem_file(ca.value.as_ref()).unwrap_or_else(|e| {
            report(loc(&raw.ca), "tls.ca", e.to_string());
            Trust::default()
        }),
        None => Trust::default(),
    };
    TlsConfig { server, trust }
}
