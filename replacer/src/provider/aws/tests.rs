use super::xml::{AwsError, GroupsPage};
use super::*;

const GROUPS: &str = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>web</AutoScalingGroupName>
        <MinSize>0</MinSize>
        <AvailabilityZones><member>us-east-1a</member></AvailabilityZones>
        <Instances>
          <member>
            <InstanceId>i-0aaa</InstanceId>
            <AvailabilityZone>us-east-1a</AvailabilityZone>
            <LifecycleState>InService</LifecycleState>
            <HealthStatus>Healthy</HealthStatus>
          </member>
          <member>
            <InstanceId>i-0bbb</InstanceId>
            <LifecycleState>Pending</LifecycleState>
            <HealthStatus>Healthy</HealthStatus>
          </member>
          <member>
            <InstanceId>i-0ccc</InstanceId>
            <LifecycleState>Terminating:Wait</LifecycleState>
            <HealthStatus>Unhealthy</HealthStatus>
          </member>
        </Instances>
        <TerminationPolicies><member>Default</member></TerminationPolicies>
      </member>
      <member>
        <AutoScalingGroupName>empty</AutoScalingGroupName>
        <Instances/>
      </member>
    </AutoScalingGroups>
    <NextToken>page-2</NextToken>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;

#[test]
fn reads_groups_keeps_in_service_members_and_the_next_token() {
    let page = parse_groups(GROUPS).unwrap();
    assert_eq!(page.groups, ["web", "empty"]);
    assert_eq!(
        page.members,
        [GroupMember {
            id: "i-0aaa".into(),
            group: "web".into()
        }]
    );
    assert_eq!(page.next_token.as_deref(), Some("page-2"));
}

#[test]
fn the_last_page_has_no_next_token() {
    let xml = r#"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>
            <AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>"#;
    assert_eq!(parse_groups(xml).unwrap(), GroupsPage::default());
}

#[test]
fn refuses_answers_that_are_not_the_expected_document() {
    for (xml, expected) in [
        ("<html>oops", "not XML"),
        (
            "<DescribeInstancesResponse/>",
            "expected <DescribeAutoScalingGroupsResponse>",
        ),
        (
            "<DescribeAutoScalingGroupsResponse/>",
            "no <DescribeAutoScalingGroupsResult>",
        ),
    ] {
        let err = parse_groups(xml).unwrap_err();
        assert!(err.contains(expected), "{xml}: {err}");
    }
}

#[test]
fn reads_ec2_instances_with_their_addresses_and_launch_time() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <reservationSet><item><instancesSet>
    <item>
      <instanceId>i-0aaa</instanceId>
      <networkInterfaceSet><item><privateIpAddress>10.9.9.9</privateIpAddress></item></networkInterfaceSet>
      <privateDnsName>ip-10-0-0-7.ec2.internal</privateDnsName>
      <launchTime>2024-05-01T12:00:00.000Z</launchTime>
      <privateIpAddress>10.0.0.7</privateIpAddress>
      <ipAddress>54.1.2.3</ipAddress>
    </item>
    <item><instanceId>i-0bbb</instanceId></item>
  </instancesSet></item></reservationSet>
  <nextToken>more</nextToken>
</DescribeInstancesResponse>"#;
    let (instances, next) = parse_ec2_instances(xml).unwrap();
    assert_eq!(next.as_deref(), Some("more"));
    assert_eq!(
        instances,
        [
            Ec2Instance {
                id: "i-0aaa".into(),
                private_ip: Some("10.0.0.7".into()),
                public_ip: Some("54.1.2.3".into()),
                private_dns: Some("ip-10-0-0-7.ec2.internal".into()),
                launch_us: Some(1_714_564_800_000_000),
            },
            Ec2Instance {
                id: "i-0bbb".into(),
                ..Ec2Instance::default()
            },
        ]
    );
}

#[test]
fn reads_autoscaling_instances() {
    let xml = r#"<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>
            <AutoScalingInstances><member><InstanceId>i-0aaa</InstanceId>
            <AutoScalingGroupName>web</AutoScalingGroupName></member></AutoScalingInstances>
            </DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>"#;
    assert_eq!(
        parse_autoscaling_instances(xml).unwrap(),
        [("i-0aaa".to_owned(), "web".to_owned())]
    );
    let none = r#"<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>
            <AutoScalingInstances/></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>"#;
    assert_eq!(parse_autoscaling_instances(none).unwrap(), []);
}

#[test]
fn reads_both_kinds_of_error_document() {
    let autoscaling = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
            <Error><Type>Sender</Type><Code>ValidationError</Code>
            <Message>Instance Id not found - No managed instance found for instance ID: i-0zzz</Message>
            </Error><RequestId>r</RequestId></ErrorResponse>"#;
    let ec2 = r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response><Errors><Error><Code>AuthFailure</Code>
            <Message>AWS was not able to validate the provided access credentials</Message>
            </Error></Errors><RequestID>r</RequestID></Response>"#;
    assert_eq!(
        parse_error(autoscaling),
        Some(AwsError {
            code: "ValidationError".into(),
            message: "Instance Id not found - No managed instance found for instance ID: i-0zzz"
                .into()
        })
    );
    assert_eq!(parse_error(ec2).map(|e| e.code), Some("AuthFailure".into()));
    assert_eq!(parse_error("<!doctype html><p>Internal Server Error"), None);
    assert_eq!(
        parse_error("<Error><Message>no code</Message></Error>"),
        None
    );
}

#[test]
fn knows_the_answers_that_mean_no_such_instance() {
    let aws = |code: &str, message: &str| CallError::Aws {
        action: "SetInstanceHealth",
        code: code.into(),
        message: message.into(),
    };
    assert!(aws("InvalidInstanceID.NotFound", "gone").is_not_found());
    assert!(aws("InvalidInstanceID.Malformed", "bad").is_not_found());
    assert!(
        aws(
            "ValidationError",
            "Instance Id not found - No managed instance"
        )
        .is_not_found()
    );
    assert!(!aws("ValidationError", "1 validation error detected").is_not_found());
    assert!(!aws("Throttling", "Rate exceeded").is_not_found());
    assert!(!CallError::Timeout.is_not_found());
    let err = aws("Throttling", "Rate exceeded").into_provider(Duration::from_secs(1));
    assert_eq!(
        err.to_string(),
        "aws: SetInstanceHealth: Throttling: Rate exceeded"
    );
}

fn sample() -> Ec2Instance {
    Ec2Instance {
        id: "i-0aaa".into(),
        private_ip: Some("10.0.0.7".into()),
        public_ip: None,
        private_dns: Some("ip-10-0-0-7.ec2.internal".into()),
        launch_us: None,
    }
}

#[test]
fn fills_url_templates() {
    for (template, expected) in [
        ("http://{private_ip}:8080", Ok("http://10.0.0.7:8080")),
        (
            "https://{private_dns}/svc/{instance_id}",
            Ok("https://ip-10-0-0-7.ec2.internal/svc/i-0aaa"),
        ),
        (
            "http://{instance_id}.internal:8080/{instance_id}",
            Ok("http://i-0aaa.internal:8080/i-0aaa"),
        ),
        // Valid, but this instance has no public address (yet).
        ("http://{public_ip}:80", Err("public_ip")),
    ] {
        let parsed = UrlTemplate::parse(template).unwrap();
        assert_eq!(
            parsed.fill(&sample()),
            expected.map(str::to_owned),
            "{template}"
        );
    }
}

#[test]
fn refuses_bad_url_templates_by_name() {
    for (template, expected) in [
        ("http://{private_ip", "never closed"),
        (
            "http://{ip}:8080",
            "unknown placeholder {ip}; known: {private_ip}",
        ),
        ("http://10.0.0.1:8080", "has no placeholder"),
        ("{private_ip}:8080", "does not make a URL"),
        ("ftp://{private_ip}/", "expected http or https"),
        ("http://{private_ip}}:80", "without its"),
    ] {
        let err = UrlTemplate::parse(template).unwrap_err();
        assert!(err.contains(expected), "{template}: {err}");
    }
}

fn settings() -> AwsSettings {
    AwsSettings {
        endpoint: None,
        region: "eu-west-1".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("very-secret-key"),
        session_token: Some(Secret::new("very-secret-token")),
        groups: vec!["web".into()],
        action: AwsAction::MarkUnhealthy,
        url_template: "http://{private_ip}:8080".into(),
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn new_checks_the_settings_and_never_shows_the_secret() {
    let provider = AwsProvider::new(settings()).unwrap();
    assert_eq!(
        provider.autoscaling.as_str(),
        "https://autoscaling.eu-west-1.amazonaws.com/"
    );
    assert_eq!(
        provider.ec2.as_str(),
        "https://ec2.eu-west-1.amazonaws.com/"
    );
    let shown = format!("{provider:?}");
    assert!(!shown.contains("very-secret"), "{shown}");

    type Change = fn(&mut AwsSettings);
    let bad: [(Change, &str); 7] = [
        (|s| s.region = "eu west".into(), "not an AWS region"),
        (|s| s.access_key_id = " ".into(), "access_key_id is empty"),
        (
            |s| s.secret_access_key = Secret::new(""),
            "secret_access_key is empty",
        ),
        (|s| s.groups.clear(), "no Auto Scaling group"),
        (
            |s| s.groups = vec!["web".into(), "web".into()],
            "\"web\" is named twice",
        ),
        (|s| s.timeout = Duration::ZERO, "timeout"),
        (
            |s| s.endpoint = Url::parse("http://key:very-secret-key@localhost:5000").ok(),
            "not in the URL",
        ),
    ];
    for (change, expected) in bad {
        let mut s = settings();
        change(&mut s);
        let err = AwsProvider::new(s).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("very-secret"), "{err}");
    }
}

#[test]
fn a_custom_endpoint_serves_both_apis() {
    let mut s = settings();
    s.endpoint = Url::parse("http://127.0.0.1:5000").ok();
    let provider = AwsProvider::new(s).unwrap();
    assert_eq!(provider.autoscaling, provider.ec2);
    assert_eq!(shown_endpoint(&provider.ec2), "http://127.0.0.1:5000");
}

#[test]
fn lists_are_numbered_from_one() {
    assert_eq!(
        member_list("Filter.1.Value", &["a".into(), "b".into()]),
        [
            ("Filter.1.Value.1".to_owned(), "a".to_owned()),
            ("Filter.1.Value.2".to_owned(), "b".to_owned())
        ]
    );
}
