//! `lookout check-config`: every rejected fixture maps to its exact messages, with positions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::process::Command;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

#[test]
fn every_invalid_fixture_gives_its_exact_errors_and_exit_code_2() {
    let cases: &[(&str, &[&str])] = &[
        (
            "invalid-alerting.yaml",
            &[
                r#"6:18: alerting.confirm_after: must be from 0s to 10m, got 20m"#,
                r#"8:11: alerting.notifiers.mail: `tls`: "sometimes" is not one of starttls, tls, none"#,
                r#"9:12: alerting.notifiers.pager: pagerduty: routing_key is empty"#,
                r#"11:7: alerting.subscribe[0]: `notifier`: no notifier named "chat"; configured: log"#,
                r#"12:7: alerting.subscribe[1]: `window.timezone`: "Mars/Olympus" is not a time zone; write an IANA name such as Europe/London or UTC"#,
                r#"14:7: alerting.checks[0].target: at column 24: expected ")", found end of input"#,
                r#"17:7: alerting.checks[1].target: at column 17: unknown percentile "p97": expected p50, p95, p99 or max"#,
                r#"20:7: alerting.checks[2].gate: a gate needs 1 <= bad <= of <= 100, got 4 out of 3"#,
                r#"24:7: alerting.checks[3].target: names check "nosuch", but the config has no `checks`"#,
                r#"28:5: alerting.maintenance: has moved: scheduled maintenance is the collector's: write it in the top-level `maintenance:` list, with `checks:` (or schedule it with POST /api/v1/maintenance)"#,
            ],
        ),
        (
            "invalid-bad-address.yaml",
            &[r#"4:13: expected an address such as 127.0.0.1:8080"#],
        ),
        (
            "invalid-bad-duration.yaml",
            &[
                r#"5:22: "5 parsecs" is not a duration (unknown time unit "parsecs", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. `500ms`, `10s` or `1m`"#,
            ],
        ),
        (
            "invalid-check-assertion-type.yaml",
            &[
                r#"14:15: unknown variant `teapot`, expected one of status, json, body_contains, header, max_time, cert_days_left"#,
            ],
        ),
        (
            "invalid-check-no-token.yaml",
            &[
                r#"1:1: collector.token: is required when there are checks: agents send it to the collector (e.g. `token: ${LOOKOUT_TOKEN}`)"#,
            ],
        ),
        (
            "invalid-check-setup.yaml",
            &[
                r#"10:31: probes.regions[2]: region "eu-west" is listed twice"#,
                r#"12:11: checks[0].name: "bad name!" is not a check name: 1 to 64 letters, digits, `-` or `_`"#,
                r#"14:11: checks[0] (bad name!).cron: give `interval` or `cron`, not both"#,
                r#"15:15: checks[0] (bad name!).regions[0]: "mars" is not one of probes.regions (eu-west, us-east, eu-west)"#,
                r#"16:9: checks[0] (bad name!).ca: cannot read CA file tests/config/no/such/ca.pem: No such file or directory (os error 2)"#,
                r#"17:12: checks[0] (bad name!).steps: a check needs at least one step (or `heartbeat:`, for a job that reports itself)"#,
            ],
        ),
        (
            "invalid-checks.yaml",
            &[
                r#"12:14: checks[0] (search).timeout: (30s) must not be longer than the time between runs (10s): runs would overlap"#,
                r#"16:13: checks[0] (search).steps[0].assert[0]: "items[0]" is not a JSON path: at position 0, parser error"#,
                r#"17:13: checks[0] (search).steps[0].assert[1]: `matches`: bad regex "([": unclosed character class"#,
                r#"18:13: checks[0] (search).steps[0].assert[2]: a status assertion needs exactly one of `equals` or `one_of` (non-empty)"#,
                r#"20:13: checks[0] (search).steps[0].capture[0]: capture `id` needs exactly one of `json`, `header` or `regex`"#,
                r#"21:11: checks[1].name: check "search" is defined twice"#,
                r#"22:11: checks[1] (search).cron: "61 * * * *" is not a cron expression: Minutes must be less than 59. ('61' specified.)"#,
                r#"24:14: checks[1] (search).steps[0].url: uses `{{artist_id}}`, which is neither in `variables` nor captured by an earlier step"#,
                r#"25:14: checks[1] (search).steps[1].url: "ftp://example.com/x": only http and https URLs with a host can be probed, not ftp"#,
                r#"26:17: checks[1] (search).steps[1].method: "GET POST" is not an HTTP method"#,
            ],
        ),
        (
            "invalid-collector-influxdb-url.yaml",
            &[r#"7:10: collector.influxdb.url: must not hold credentials: give them as the token"#],
        ),
        (
            "invalid-collector-influxdb.yaml",
            &[
                r#"7:10: collector.influxdb.url: "ftp://influx.example.com" is not an http(s) URL with a host"#,
                r#"8:10: collector.influxdb.org: must not be empty"#,
                r#"9:13: collector.influxdb.bucket: must not be empty"#,
                r#"10:12: collector.influxdb.token: must not be empty: InfluxDB authenticates writes with it (e.g. `token: ${INFLUX_TOKEN}`)"#,
                r#"11:17: collector.influxdb.batch_size: must be from 1 to 50000, got 0"#,
                r#"12:21: collector.influxdb.flush_interval: must be from 10ms to 1m, got 5m"#,
                r#"13:19: collector.influxdb.max_buffered: must be from 1 to 10000000, got 20000000"#,
                r#"14:10: collector.store.path: must not be empty: leave it out for DATA_DIR/collector.db"#,
            ],
        ),
        (
            "invalid-dns-type.yaml",
            &[r#"10:72: unknown variant `SOA`, expected one of A, AAAA, CNAME, MX, TXT, SRV, NS"#],
        ),
        (
            "invalid-dns.yaml",
            &[
                r#"10:24: checks[0] (resolver).steps[0].dns.server: "127.0.0.1:99999": port 99999 is out of range (1 to 65535)"#,
                r#"10:81: checks[0] (resolver).steps[0].dns.matches: bad regex "(": unclosed group"#,
                r#"11:24: checks[0] (resolver).steps[1].dns.server: "ns.example:53": the server is an IP address (as in resolv.conf), not "ns.example""#,
                r#"11:47: checks[0] (resolver).steps[1].dns.name: "a..b" is not a domain name: Malformed label"#,
                r#"11:64: checks[0] (resolver).steps[1].dns.min_ttl: min_ttl 60 is above max_ttl 30"#,
                r#"12:14: checks[0] (resolver).steps[2].dns: a step is one kind: `tcp` or `dns`, not both"#,
            ],
        ),
        (
            "invalid-duplicate-key.yaml",
            &[r#"4:3: duplicate mapping key: seed"#],
        ),
        (
            "invalid-duplicate-users.yaml",
            &[
                r#"8:9: platform.gateway.users[1].token: is already used by another user or API key"#,
                r#"8:9: platform.gateway.users[1].user: user "demo" is listed twice"#,
                r#"8:9: platform.gateway.users[1].country: "gb" is not an ISO 3166 country code such as GB"#,
                r#"8:9: platform.gateway.users[1].language: "EN" is not an ISO 639-1 language code such as en"#,
                r#"12:9: platform.gateway.users[2].user: "bad user" is not a user id: 1 to 64 letters, digits, `-`, `_`, `.` or `@`"#,
                r#"12:9: platform.gateway.users[2].token: is already used by another user or API key"#,
            ],
        ),
        (
            "invalid-duration-without-unit.yaml",
            &[r#"5:23: a duration needs a unit: write `10s` or `10ms`, not `10`"#],
        ),
        (
            "invalid-empty-gateway-credentials.yaml",
            &[
                r#"4:5: platform.gateway: needs at least one of `api_keys` or `users`, or nobody can call the platform"#,
                r#"6:17: platform.gateway.public_url: "ftp://example.com" is not an http(s) URL"#,
            ],
        ),
        (
            "invalid-gateway-values.yaml",
            &[
                r#"5:22: platform.gateway.health_timeout: (500ms) must be shorter than health_interval (300ms)"#,
                r#"6:22: platform.gateway.default_country: "uk" is not an ISO 3166 country code such as GB"#,
                r#"7:18: platform.gateway.signing_key: must be at least 16 characters: it signs play URLs"#,
            ],
        ),
        (
            "invalid-heartbeat.yaml",
            &[
                r#"9:26: checks[0] (nightly).heartbeat.period: 500ms: a heartbeat's period must be from 1s to 31 days"#,
                r#"9:51: checks[0] (nightly).heartbeat.token: a heartbeat needs its own token, which reports carry as `Authorization: Bearer ...`"#,
                r#"11:15: checks[1] (hourly).interval: a heartbeat check is run by whoever reports to it: `heartbeat.period` says how often, and it has no steps, schedule, timeout or regions"#,
                r#"13:5: checks[2] (nothing).steps: a check needs at least one step (or `heartbeat:`, for a job that reports itself)"#,
            ],
        ),
        (
            "invalid-icmp.yaml",
            &[
                r#"10:39: checks[0] (router).steps[0].icmp.count: must be from 1 to 100, got 0"#,
                r#"10:52: checks[0] (router).steps[0].icmp.interval: must be from 10ms to 10s, got 1ms"#,
                r#"11:52: checks[0] (router).steps[1].icmp.max_lost: max_lost 3 would let all 3 requests go unanswered: it must be below count"#,
                r#"12:23: checks[0] (router).steps[2].icmp.host: is empty: write a name or an IP address"#,
            ],
        ),
        (
            "invalid-listen-count.yaml",
            &[
                r#"8:13: platform.mixes.listen: lists 2 addresses for 3 instances; give one per instance, or leave it out for free ports"#,
                r#"8:14: platform.mixes.listen[0]: 127.0.0.1:9100 is already used by another listener in this file"#,
            ],
        ),
        (
            "invalid-many-errors.yaml",
            &[
                r#"2:10: log.level: "lookout=[loud" is not a log filter: error parsing level filter: expected one of "off", "error", "warn", "info", "debug", "trace", or a number 0-5; write e.g. `info` or `lookout=debug,warn`"#,
                r#"4:16: platform.admin_token: must not be empty: it guards the fault-injection API"#,
                r#"5:12: platform.artists: must be from 100 to 200000, got 50"#,
                r#"7:5: platform.gateway: needs at least one of `api_keys` or `users`, or nobody can call the platform"#,
                r#"9:21: platform.gateway.health_timeout: (2s) must be shorter than health_interval (1s)"#,
                r#"11:16: platform.catalogue.instances: must be from 1 to 16, got 0"#,
                r#"13:21: platform.analytics.queue_capacity: must be from 1 to 10000000, got 0"#,
            ],
        ),
        (
            "invalid-missing-env.yaml",
            &[
                r#"2:16: environment variable LOOKOUT_TEST_SURELY_UNSET is not set (write `${LOOKOUT_TEST_SURELY_UNSET:-default}` to give a default)"#,
                r#"4:17: unterminated `${`: write `${NAME}`, or `$${` for a literal `${`"#,
            ],
        ),
        (
            "invalid-playback.yaml",
            &[
                r#"10:64: checks[0] (listen).steps[0].playback.seconds: 0 seconds of playback: must be more than 0 and at most 3600"#,
                r#"10:76: checks[0] (listen).steps[0].playback.bitrate: "fast" is not a bitrate: write e.g. `320kbps`, `1.4Mbps` or `44100B/s`"#,
                r#"10:98: checks[0] (listen).steps[0].playback.degraded_below: -1: the ratio to real time under which a run is degraded must be at least 1 (under 1x real time a run fails)"#,
                r#"11:64: checks[0] (listen).steps[1].playback.seconds: 7200 seconds of playback: must be more than 0 and at most 3600"#,
                r#"11:86: checks[0] (listen).steps[1].playback.degraded_below: must be from 1 to 100, got 500"#,
                r#"13:19: checks[0] (listen).steps[2].playback: is for HTTP steps; a `tcp` step checks its reply with its own fields"#,
            ],
        ),
        (
            "invalid-replacer.yaml",
            &[
                r#"8:14: replacer.health: timeout (2s) must not be longer than interval (1s): polls would overlap"#,
                r#"9:24: replacer.health.failure_threshold: must be from 1 to 100, got 0"#,
                r#"11:26: replacer.brakes.max_unhealthy_share: "150%" is not a share above 0 and below 1, such as 50% or 0.5"#,
                r#"12:21: replacer.brakes.max_concurrent: must be from 1 to 100, got 0"#,
                r#"14:5: replacer.provider.action: "reboot" is not one of mark_unhealthy, terminate, terminate_and_shrink"#,
                r#"14:5: replacer.provider: aws: url_template "http://{private_ipp}:8080": unknown placeholder {private_ipp}; known: {private_ip}, {public_ip}, {private_dns}, {instance_id}"#,
            ],
        ),
        (
            "invalid-slo.yaml",
            &[
                r#"8:24: slo.availability_target: 101% is not between 0 and 100 % (both excluded): a target of 100 % allows no downtime at all"#,
                r#"9:22: slo.latency_objective: must be more than 0 ms"#,
                r#"10:11: slo.window: must be from 1 day to 400 days, got 12h"#,
                r#"11:23: slo.maintenance_in_sla: "excluded" is not true or false: `false` (the default) leaves maintenance out of availability, `true` counts it as any other time"#,
                r#"14:33: checks[0] (search).slo.availability_target: 99.9 is ambiguous: write a percentage with its % sign (99.9%) or a ratio below 1 (0.999)"#,
                r#"14:47: checks[0] (search).slo.window: must be from 1 day to 400 days, got 401d"#,
                r#"18:24: checks[1] (listen).latency_objective: has moved: the latency objective is part of the check's SLO: write `slo: { latency_objective: 800ms }` in the check (or at the top level for every check)"#,
                r#"19:61: checks[1] (listen).slo.latency_objective: must be at most 120 s, got 180s"#,
                r#"23:5: maintenance[0].checks: "nosuch" is not a check; the checks are search, listen"#,
                r#"24:5: maintenance[1].ends: must be after `starts`"#,
                r#"25:5: maintenance[2]: `starts` and `ends` must be RFC 3339 times, e.g. 2026-12-01T02:00:00Z"#,
                r#"26:5: maintenance[3].name: must not be empty"#,
                r#"26:5: maintenance[3].checks: must name at least one check"#,
                r#"26:5: maintenance[3].ends: a maintenance window may last at most 31 days"#,
            ],
        ),
        (
            "invalid-status-page.yaml",
            &[
                r#"12:15: status_page.public_url: "not a url" is not an http(s) URL"#,
                r#"13:11: status_page.target: has moved: the availability target is each check's SLO: write `slo: { availability_target: 99.99% }` at the top level (every check) or in a check"#,
                r#"14:12: status_page.regions: "mars-1" is not one of probes.regions (eu-west, us-east, ap-south)"#,
                r#"18:11: status_page.groups[0].components[0].check: "serch" is not a check; the checks are search"#,
                r#"19:11: status_page.groups[0].components[1].id: "Bad Id" is not a usable id: lower-case letters, digits and `-`"#,
                r#"20:23: status_page.maintenance_in_sla: has moved: how maintenance counts is each check's SLO: write `slo: { maintenance_in_sla: false }` at the top level (every check) or in a check"#,
                r#"22:5: status_page.maintenance: has moved: scheduled maintenance is the collector's: write it in the top-level `maintenance:` list, with `checks:` (or schedule it with POST /api/v1/maintenance)"#,
                r#"25:18: status_page.refresh_every: must be from 1s to 1h, got 0s"#,
                r#"27:5: status_page.reports.schedule: "every day" has 2 fields; write crontab's 5 (`*/5 * * * *`) or 6 with seconds first"#,
                r#"27:5: status_page.reports.email: `tls`: "sometimes" is not one of starttls, tls, none"#,
            ],
        ),
        ("invalid-syntax.yaml", &[r#"3:12: expected mapping start"#]),
        (
            "invalid-tcp-family.yaml",
            &[r#"10:43: unknown variant `v5`, expected one of v4, v6"#],
        ),
        (
            "invalid-tcp.yaml",
            &[
                r#"10:25: checks[0] (redis).steps[0].tcp.address: "cache:70000": port 70000 is out of range (1 to 65535)"#,
                r#"10:48: checks[0] (redis).steps[0].tcp.expect: bad regex "+PONG(": repetition operator missing expression"#,
                r#"11:25: checks[0] (redis).steps[1].tcp.address: "::1:6379": an IPv6 address goes in brackets, as `[::1]:6379`"#,
                r#"13:13: checks[0] (redis).steps[1].assert: is for HTTP steps; a `tcp` step checks its reply with its own fields"#,
                r#"14:9: checks[0] (redis).steps[2]: a step needs one of `url` (an HTTP request), `tcp` (a TCP exchange), `dns` (a DNS query), `tls` (a TLS handshake), `icmp` (echo requests) or `websocket` (a WebSocket conversation)"#,
                r#"16:14: checks[0] (redis).steps[3].tcp: a step is one kind: `url` or `tcp`, not both"#,
            ],
        ),
        (
            "invalid-tls.yaml",
            &[
                r#"10:25: checks[0] (certificate).steps[0].tls.address: "gateway" is not an address: write `host:port` or `[::1]:port`"#,
                r#"10:51: checks[0] (certificate).steps[0].tls.min_days_left: must be 0 or more, got -1"#,
                r#"10:63: checks[0] (certificate).steps[0].tls.issuer: bad regex "[": unclosed character class"#,
                r#"11:55: checks[0] (certificate).steps[1].tls.min_days_left: must be 0 or more, got -3"#,
            ],
        ),
        (
            "invalid-unknown-key.yaml",
            &[
                r#"3:3: unknown field `gatway`, expected one of seed, artists, admin_token, gateway, catalogue, mixes, media, analytics"#,
            ],
        ),
        (
            "invalid-websocket.yaml",
            &[
                r#"10:27: checks[0] (feed).steps[0].websocket.url: "http://analytics:8085/live": a WebSocket URL is ws:// or wss:// with a host, not http"#,
                r#"10:65: checks[0] (feed).steps[0].websocket.expect: bad regex "(": unclosed group"#,
                r#"11:79: checks[0] (feed).steps[1].websocket.json_path: a message is matched by `expect` or by `json_path`, not both"#,
                r#"12:66: checks[0] (feed).steps[2].websocket.json_path: bad JSON path "$[": at position 1, parser error"#,
                r#"12:80: checks[0] (feed).steps[2].websocket.within: must be more than 0"#,
                r#"13:63: checks[0] (feed).steps[3].websocket.equals: compares what `json_path` selects: give `json_path` too"#,
            ],
        ),
        (
            "invalid-wrong-type.yaml",
            &[r#"3:12: expected a whole number"#],
        ),
    ];
    let mut files: Vec<String> = std::fs::read_dir("tests/config")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("invalid-"))
        .collect();
    files.sort();
    let mapped: Vec<&str> = cases.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        files, mapped,
        "every fixture has its expected messages, and no more"
    );
    for (file, expected) in cases {
        let path = format!("tests/config/{file}");
        let out = Command::new(LOOKOUT)
            .args(["check-config", &path])
            .env_remove("LOOKOUT_TEST_SURELY_UNSET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let mut want: Vec<String> = expected.iter().map(|m| format!("{path}:{m}")).collect();
        let n = expected.len();
        want.push(format!(
            "lookout: {n} error{} in the config; nothing was started",
            if n == 1 { "" } else { "s" }
        ));
        assert_eq!(stderr.lines().collect::<Vec<_>>(), want, "{file}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn every_example_config_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir("../examples").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let out = Command::new(LOOKOUT)
                .arg("check-config")
                .arg(&path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", path.display());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                format!("{}: ok", path.display())
            );
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn values_from_the_environment_never_appear_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "log:\n  level: ${LEVEL}\nplatform:\n  admin_token: ${ADMIN}\n  artists: ${ARTISTS}\n",
    )
    .unwrap();
    let out = Command::new(LOOKOUT)
        .arg("check-config")
        .arg(&path)
        .env("ADMIN", "hunter2-admin")
        .env("ARTISTS", "50")
        .env("LEVEL", "sneaky=[secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr.contains("sneaky"), "{stderr}");
    assert!(
        stderr.contains(":2:10: log.level: \"${LEVEL}\" is not a log filter"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":5:12: platform.artists: must be from 100 to 200000, got 50"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let out = Command::new(LOOKOUT)
        .args(["check-config", "no/such.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("no/such.yaml:0:0: cannot read the config file: No such file"),
        "{stderr}"
    );
}
