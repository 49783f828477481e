use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "t.yaml", &|k| match k {
        "SECRET" => Some("tok=[123456".into()),
        _ => None,
    })
}

#[test]
fn the_builtin_config_is_valid_and_has_the_documented_defaults() {
    let c = Config::parse(DEFAULT_CONFIG, "x", &|_| None).unwrap();
    assert_eq!(c.platform.gateway.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.platform.artists, 10_000);
    assert_eq!(c.platform.admin_token.expose(), "lookout-admin");
    for s in &c.platform.services {
        assert_eq!(s.listen.len(), 2, "{:?}", s.kind);
    }
}

#[test]
fn secrets_from_the_environment_never_show_in_errors() {
    let text =
        "log:\n  level: ${SECRET}\nplatform:\n  admin_token: x\n  gateway: {api_keys: [k]}\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(!err.contains("123456"), "{err}");
    assert!(
        err.starts_with("t.yaml:2:10: log.level: \"${SECRET}\" is not a log filter"),
        "{err}"
    );
}

#[test]
fn collects_every_semantic_error_in_file_order() {
    let text = "platform:\n  admin_token: a\n  artists: 5\n  mixes:\n    instances: 40\n  gateway:\n    api_keys: [k, k]\n";
    let errs = parse(text).unwrap_err().0;
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, "platform.artists"),
            (5, "platform.mixes.instances"),
            (7, "platform.gateway.api_keys[1]")
        ]
    );
}

#[test]
fn the_influxdb_sink_is_off_unless_configured_and_takes_its_token_from_the_environment() {
    let base = "platform:\n  admin_token: x\n  gateway: {api_keys: [k]}\n";
    assert!(parse(base).unwrap().collector.influxdb.is_none());
    let text = format!(
        "{base}collector:\n  influxdb:\n    url: http://influx:8086\n    org: lookout\n    bucket: probes\n    token: ${{SECRET}}\n    batch_size: 1000\n"
    );
    let influx = parse(&text).unwrap().collector.influxdb.unwrap();
    assert_eq!(
        (
            influx.url.as_str(),
            influx.org.as_str(),
            influx.bucket.as_str()
        ),
        ("http://influx:8086", "lookout", "probes")
    );
    assert_eq!(influx.token.expose(), "tok=[123456");
    let d = influx.delivery;
    assert_eq!(
        (d.batch_size, d.flush_interval, d.max_buffered),
        (1000, Duration::from_secs(1), 100_000)
    );
    assert_eq!(
        (d.retry_initial, d.retry_max),
        (Duration::from_secs(1), Duration::from_secs(60))
    );
}
