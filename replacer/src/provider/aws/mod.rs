//! The `aws` provider: the instances of EC2 Auto Scaling groups. A replacement is handed to the
//! group: the instance is marked unhealthy (`SetInstanceHealth`), so that the group terminates
//! it and launches another, or terminated in its group (`TerminateInstanceInAutoScalingGroup`).
//!
//! No AWS SDK: `aws-config` and `aws-sdk-autoscaling` take minutes to build, on every clean
//! build and every CI run, for four calls. This file speaks the Query APIs instead (Auto
//! Scaling `2011-01-01`, EC2 `2016-11-15`: form-encoded POSTs answered in XML, stable for
//! years) over `reqwest`, signs each request with `aws-sigv4` (AWS's own SigV4 signer) and
//! reads the answers with `roxmltree`. The XML is read by pure functions, tested below; the
//! calls themselves are tested against moto's server in `tests/aws.rs`.
//!
//! No credential, session token or signature ever appears in an error or a log line: errors
//! name the action, the endpoint's host and AWS's own error code and message.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use futures_util::future::BoxFuture;
use lookout_model::secret::Secret;
use roxmltree::{Document, Node};
use url::Url;

use super::{Provider, ProviderError, Replaced};
use crate::instance::Instance;

mod config;

pub use config::{AwsConfig, RawAws};

const PROVIDER: &str = "aws";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The most groups `DescribeAutoScalingGroups` returns in one page.
const GROUPS_PAGE: usize = 100;
/// Instance ids per `DescribeInstances` call (AWS takes up to 200 values in one filter).
const INSTANCES_CHUNK: usize = 100;
/// A guard against an endpoint that hands out `NextToken`s forever.
const MAX_PAGES: usize = 1000;

/// How the `aws` provider reaches AWS and what it does to an instance. Built from the config
/// ([`AwsConfig`]); checked once by [`AwsProvider::new`].
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `None`: AWS itself (`https://autoscaling.{region}.amazonaws.com` and
    /// `https://ec2.{region}.amazonaws.com`). Otherwise one endpoint for both APIs, as moto's
    /// server or LocalStack serve them.
    pub endpoint: Option<Url>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// The Auto Scaling groups to watch, by name; an instance's `service` is its group's name.
    pub groups: Vec<String>,
    pub action: AwsAction,
    /// How an instance's base URL is made from its EC2 data, e.g. `http://{private_ip}:8080`.
    /// Placeholders: `{private_ip}`, `{public_ip}`, `{private_dns}`, `{instance_id}`.
    pub url_template: String,
    /// The bound on each call to AWS.
    pub timeout: Duration,
}

/// What a replacement does to the instance in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsAction {
    /// `SetInstanceHealth` to `Unhealthy`, not respecting the grace period: the group
    /// terminates the instance and launches another, as it would after a failed health check.
    MarkUnhealthy,
    /// `TerminateInstanceInAutoScalingGroup`. With `decrement_desired` the group shrinks by
    /// one; without it, it launches a replacement.
    Terminate { decrement_desired: bool },
}

pub struct AwsProvider {
    client: reqwest::Client,
    credentials: Credentials,
    region: String,
    autoscaling: Url,
    ec2: Url,
    groups: Vec<String>,
    action: AwsAction,
    template: UrlTemplate,
    timeout: Duration,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("region", &self.region)
            .field("autoscaling", &self.autoscaling.as_str())
            .field("ec2", &self.ec2.as_str())
            .field("groups", &self.groups)
            .field("action", &self.action)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// Checks the settings once; every later call uses them as they are.
    pub fn new(settings: AwsSettings) -> Result<Self, ProviderError> {
        let AwsSettings {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            groups,
            action,
            url_template,
            timeout,
        } = settings;
        let region = region.trim().to_owned();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(failed(format!(
                "region {region:?} is not an AWS region name such as \"eu-west-1\""
            )));
        }
        if access_key_id.trim().is_empty() {
            return Err(failed("access_key_id is empty".into()));
        }
        if secret_access_key.is_empty() {
            return Err(failed("secret_access_key is empty".into()));
        }
        if groups.is_empty() {
            return Err(failed(
                "no Auto Scaling group to watch: name at least one in groups".into(),
            ));
        }
        let mut seen = HashSet::new();
        for group in &groups {
            if group.trim().is_empty() {
                return Err(failed("groups: a group name is empty".into()));
            }
            if !seen.insert(group.as_str()) {
                return Err(failed(format!("groups: {group:?} is named twice")));
            }
        }
        if timeout.is_zero() {
            return Err(failed("timeout must be longer than zero".into()));
        }
        let template = UrlTemplate::parse(&url_template).map_err(failed)?;
        let (autoscaling, ec2) = match endpoint {
            Some(url) => {
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(failed(format!(
                        "endpoint {:?} is not an http or https URL with a host",
                        shown_endpoint(&url)
                    )));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(failed(
                        "endpoint: put credentials in access_key_id and secret_access_key, \
                         not in the URL"
                            .into(),
                    ));
                }
                (url.clone(), url)
            }
            None => (
                aws_url(&format!("https://autoscaling.{region}.amazonaws.com/"))?,
                aws_url(&format!("https://ec2.{region}.amazonaws.com/"))?,
            ),
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| failed(format!("cannot build the HTTP client: {e}")))?;
        let credentials = Credentials::new(
            access_key_id.trim(),
            secret_access_key.expose(),
            session_token.map(|t| t.expose().to_owned()),
            None,
            "lookout-config",
        );
        Ok(AwsProvider {
            client,
            credentials,
            region,
            autoscaling,
            ec2,
            groups,
            action,
            template,
            timeout,
        })
    }

    fn url(&self, api: Api) -> &Url {
        match api {
            Api::AutoScaling => &self.autoscaling,
            Api::Ec2 => &self.ec2,
        }
    }

    /// A Query API request, signed with SigV4 for `api`'s service. The signature goes in
    /// headers of the request only: nothing here returns or logs it.
    fn signed_request(
        &self,
        api: Api,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let url = self.url(api);
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action);
        form.append_pair("Version", api.version());
        for (key, value) in params {
            form.append_pair(key, value);
        }
        let body = form.finish();

        let cannot_sign = |e: &dyn std::fmt::Display| {
            CallError::Other(format!("{action}: cannot sign the request: {e}"))
        };
        let identity = self.credentials.clone().into();
        let signing = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(api.signing_name())
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| cannot_sign(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            std::iter::once(("content-type", FORM)),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| cannot_sign(&e))?;
        let (instructions, _signature) = sign(signable, &signing)
            .map_err(|e| cannot_sign(&e))?
            .into_parts();
        let mut request = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, FORM);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        Ok(request.body(body))
    }

    /// One signed Query API call, bounded by `timeout`; the answer's body, or what went wrong.
    async fn call(
        &self,
        api: Api,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, CallError> {
        let request = self.signed_request(api, action, params)?;
        let host = shown_endpoint(self.url(api));
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let (status, text) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => return Err(CallError::Timeout),
            Ok(Err(e)) if e.is_timeout() => return Err(CallError::Timeout),
            // reqwest's errors carry the URL (no secret in it, but say it once, our way).
            Ok(Err(e)) => {
                return Err(CallError::Other(format!(
                    "{action} at {host}: {}",
                    with_causes(&e.without_url())
                )));
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_success() {
            return Ok(text);
        }
        match parse_error(&text) {
            Some(error) => Err(CallError::Aws {
                action,
                code: error.code,
                message: error.message,
            }),
            None => Err(CallError::Other(format!(
                "{action} at {host}: HTTP {status}, and the answer is not an AWS error document"
            ))),
        }
    }

    /// The in-service members of the watched groups, every page of them.
    async fn group_members(&self) -> Result<Vec<GroupMember>, ProviderError> {
        let action = "DescribeAutoScalingGroups";
        let mut members = Vec::new();
        let mut found = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = member_list("AutoScalingGroupNames.member", &self.groups);
            params.push(("MaxRecords".into(), GROUPS_PAGE.to_string()));
            if let Some(token) = &token {
                params.push(("NextToken".into(), token.clone()));
            }
            let xml = self
                .call(Api::AutoScaling, action, &params)
                .await
                .map_err(|e| e.into_provider(self.timeout))?;
            let page = parse_groups(&xml).map_err(|e| unreadable(action, &e))?;
            found.extend(page.groups);
            members.extend(page.members);
            token = page.next_token;
            if token.is_none() {
                for group in self.groups.iter().filter(|g| !found.contains(*g)) {
                    tracing::warn!(group = %group, "aws: no such Auto Scaling group");
                }
                return Ok(members);
            }
        }
        Err(failed(format!(
            "{action}: still a NextToken after {MAX_PAGES} pages"
        )))
    }

    /// What EC2 knows of these instances, by id; unknown ids are simply absent.
    async fn ec2_instances(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Ec2Instance>, ProviderError> {
        let action = "DescribeInstances";
        let mut found = HashMap::new();
        for chunk in ids.chunks(INSTANCES_CHUNK) {
            // A filter rather than `InstanceId.N`: an id EC2 no longer knows is left out of
            // the answer instead of failing the whole call.
            let mut params = vec![("Filter.1.Name".to_owned(), "instance-id".to_owned())];
            params.extend(member_list("Filter.1.Value", chunk));
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                let mut page_params = params.clone();
                if let Some(token) = &token {
                    page_params.push(("NextToken".into(), token.clone()));
                }
                let xml = self
                    .call(Api::Ec2, action, &page_params)
                    .await
                    .map_err(|e| e.into_provider(self.timeout))?;
                let (instances, next) =
                    parse_ec2_instances(&xml).map_err(|e| unreadable(action, &e))?;
                found.extend(instances.into_iter().map(|i| (i.id.clone(), i)));
                pages += 1;
                match next {
                    Some(next) if pages < MAX_PAGES => token = Some(next),
                    Some(_) => {
                        return Err(failed(format!(
                            "{action}: still a NextToken after {MAX_PAGES} pages"
                        )));
                    }
                    None => break,
                }
            }
        }
        Ok(found)
    }

    async fn list(&self) -> Result<Vec<Instance>, ProviderError> {
        let members = self.group_members().await?;
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        let ec2 = if ids.is_empty() {
            HashMap::new()
        } else {
            self.ec2_instances(&ids).await?
        };
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut instances = Vec::with_capacity(members.len());
        for member in members {
            let known = ec2.get(&member.id);
            let fallback = Ec2Instance {
                id: member.id.clone(),
                ..Ec2Instance::default()
            };
            let data = known.unwrap_or(&fallback);
            let url = match self.template.fill(data) {
                Ok(url) => url,
                Err(missing) => {
                    // Its address is not assigned yet, or EC2 no longer knows it: it comes
                    // back in a later listing once it has one.
                    tracing::warn!(
                        instance = %member.id,
                        group = %member.group,
                        missing,
                        "aws: instance skipped, its URL cannot be made yet"
                    );
                    continue;
                }
            };
            instances.push(Instance {
                id: member.id,
                service: member.group,
                url,
                started_us: data.launch_us.unwrap_or(now_us),
                metrics_url: None,
            });
        }
        Ok(instances)
    }

    /// The watched group the instance is in; NotFound when no group has it.
    async fn group_of(&self, id: &str) -> Result<String, ProviderError> {
        let action = "DescribeAutoScalingInstances";
        let params = vec![("InstanceIds.member.1".to_owned(), id.to_owned())];
        let xml = match self.call(Api::AutoScaling, action, &params).await {
            Ok(xml) => xml,
            Err(e) if e.is_not_found() => return Err(not_found(id)),
            Err(e) => return Err(e.into_provider(self.timeout)),
        };
        let groups = parse_autoscaling_instances(&xml).map_err(|e| unreadable(action, &e))?;
        let Some((_, group)) = groups.into_iter().find(|(member, _)| member == id) else {
            return Err(not_found(id));
        };
        if !self.groups.contains(&group) {
            return Err(failed(format!(
                "instance {id} is in Auto Scaling group {group:?}, which is not watched ({}): \
                 left alone",
                self.groups.join(", ")
            )));
        }
        Ok(group)
    }

    async fn hand_over(&self, instance: &Instance) -> Result<Replaced, ProviderError> {
        let id = instance.id.as_str();
        let group = self.group_of(id).await?;
        let (action, params, detail) = match self.action {
            AwsAction::MarkUnhealthy => (
                "SetInstanceHealth",
                vec![
                    ("InstanceId".to_owned(), id.to_owned()),
                    ("HealthStatus".to_owned(), "Unhealthy".to_owned()),
                    ("ShouldRespectGracePeriod".to_owned(), "false".to_owned()),
                ],
                format!("marked Unhealthy in group {group}"),
            ),
            AwsAction::Terminate { decrement_desired } => (
                "TerminateInstanceInAutoScalingGroup",
                vec![
                    ("InstanceId".to_owned(), id.to_owned()),
                    (
                        "ShouldDecrementDesiredCapacity".to_owned(),
                        decrement_desired.to_string(),
                    ),
                ],
                if decrement_desired {
                    format!("terminated in group {group}, its desired capacity decremented")
                } else {
                    format!("terminated in group {group}, which launches a replacement")
                },
            ),
        };
        match self.call(Api::AutoScaling, action, &params).await {
            Ok(_) => {
                tracing::info!(instance = %id, group = %group, action, "aws: handed to its group");
                Ok(Replaced::Handed { detail })
            }
            Err(e) if e.is_not_found() => Err(not_found(id)),
            Err(e) => Err(e.into_provider(self.timeout)),
        }
    }
}

impl Provider for AwsProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn instances(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
        Box::pin(self.list())
    }

    fn replace<'a>(
        &'a self,
        instance: &'a Instance,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Replaced, ProviderError>> {
        Box::pin(async move {
            match tokio::time::timeout(deadline, self.hand_over(instance)).await {
                Ok(done) => done,
                Err(_) => Err(ProviderError::Timeout {
                    provider: PROVIDER,
                    timeout: deadline,
                }),
            }
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Api {
    AutoScaling,
    Ec2,
}

impl Api {
    fn version(self) -> &'static str {
        match self {
            Api::AutoScaling => "2011-01-01",
            Api::Ec2 => "2016-11-15",
        }
    }

    /// The service name in the SigV4 scope; moto's server also routes on it.
    fn signing_name(self) -> &'static str {
        match self {
            Api::AutoScaling => "autoscaling",
            Api::Ec2 => "ec2",
        }
    }
}

#[derive(Debug)]
enum CallError {
    Timeout,
    /// AWS answered with an error document.
    Aws {
        action: &'static str,
        code: String,
        message: String,
    },
    Other(String),
}

impl CallError {
    /// AWS's ways of saying the instance does not exist (or no group manages it).
    fn is_not_found(&self) -> bool {
        match self {
            CallError::Aws { code, message, .. } => {
                code.starts_with("InvalidInstanceID")
                    || (code == "ValidationError"
                        && message.to_ascii_lowercase().contains("not found"))
            }
            _ => false,
        }
    }

    fn into_provider(self, timeout: Duration) -> ProviderError {
        match self {
            CallError::Timeout => ProviderError::Timeout {
                provider: PROVIDER,
                timeout,
            },
            CallError::Aws {
                action,
                code,
                message,
            } => failed(format!("{action}: {code}: {message}")),
            CallError::Other(message) => failed(message),
        }
    }
}

fn failed(message: String) -> ProviderError {
    ProviderError::Failed {
        provider: PROVIDER,
        message,
    }
}

fn not_found(id: &str) -> ProviderError {
    ProviderError::NotFound {
        provider: PROVIDER,
        id: id.to_owned(),
    }
}

fn unreadable(action: &str, why: &str) -> ProviderError {
    failed(format!("{action}: unreadable answer: {why}"))
}

/// An error and its causes, `a: b: c` (reqwest's own message is only "error sending request").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut shown = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !shown.ends_with(&text) {
            shown.push_str(": ");
            shown.push_str(&text);
        }
        cause = e.source();
    }
    shown
}

fn aws_url(url: &str) -> Result<Url, ProviderError> {
    Url::parse(url).map_err(|e| failed(format!("endpoint {url:?}: {e}")))
}

/// The endpoint as errors show it: scheme, host and port only.
fn shown_endpoint(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// `prefix.1=a&prefix.2=b...`: a Query API list.
fn member_list(prefix: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{prefix}.{}", i + 1), v.clone()))
        .collect()
}

/// An instance as `DescribeAutoScalingGroups` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupMember {
    id: String,
    group: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct GroupsPage {
    /// The names of the groups in this page, members or not.
    groups: Vec<String>,
    /// Their in-service members.
    members: Vec<GroupMember>,
    next_token: Option<String>,
}

/// What EC2 says of an instance, as far as the URL template and the start time need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ec2Instance {
    id: String,
    private_ip: Option<String>,
    public_ip: Option<String>,
    private_dns: Option<String>,
    launch_us: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
struct AwsError {
    code: String,
    message: String,
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of a child element; `None` when absent or empty.
fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Parses the document and checks that its root is `expected`.
fn document<'i>(xml: &'i str, expected: &str) -> Result<Document<'i>, String> {
    let doc = Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element().tag_name().name();
    if root != expected {
        return Err(format!("expected <{expected}>, got <{root}>"));
    }
    Ok(doc)
}

fn parse_groups(xml: &str) -> Result<GroupsPage, String> {
    let doc = document(xml, "DescribeAutoScalingGroupsResponse")?;
    let result = child(doc.root_element(), "DescribeAutoScalingGroupsResult")
        .ok_or("no <DescribeAutoScalingGroupsResult>")?;
    let mut page = GroupsPage {
        next_token: text(result, "NextToken").map(str::to_owned),
        ..GroupsPage::default()
    };
    let Some(groups) = child(result, "AutoScalingGroups") else {
        return Ok(page);
    };
    for group in children(groups, "member") {
        let name = text(group, "AutoScalingGroupName").ok_or("a group without a name")?;
        page.groups.push(name.to_owned());
        let Some(instances) = child(group, "Instances") else {
            continue;
        };
        for member in children(instances, "member") {
            let id = text(member, "InstanceId")
                .ok_or_else(|| format!("an instance of group {name} without an id"))?;
            // Only InService instances are the replacer's: Pending ones are still starting
            // (they are listed once in service, their grace period counted from launch),
            // Terminating, Detaching and Standby ones are leaving or set aside by a person,
            // and lifecycle-hook states (`*:Wait`, `*:Proceed`) are someone else's to end.
            if text(member, "LifecycleState") != Some("InService") {
                continue;
            }
            page.members.push(GroupMember {
                id: id.to_owned(),
                group: name.to_owned(),
            });
        }
    }
    Ok(page)
}

/// `(instance id, group name)` pairs of a `DescribeAutoScalingInstances` answer.
fn parse_autoscaling_instances(xml: &str) -> Result<Vec<(String, String)>, String> {
    let doc = document(xml, "DescribeAutoScalingInstancesResponse")?;
    let result = child(doc.root_element(), "DescribeAutoScalingInstancesResult")
        .ok_or("no <DescribeAutoScalingInstancesResult>")?;
    let Some(instances) = child(result, "AutoScalingInstances") else {
        return Ok(Vec::new());
    };
    children(instances, "member")
        .map(|m| {
            let id = text(m, "InstanceId").ok_or("an instance without an id")?;
            let group = text(m, "AutoScalingGroupName")
                .ok_or_else(|| format!("instance {id} without a group"))?;
            Ok((id.to_owned(), group.to_owned()))
        })
        .collect()
}

/// The instances of a `DescribeInstances` answer, and its `nextToken`.
fn parse_ec2_instances(xml: &str) -> Result<(Vec<Ec2Instance>, Option<String>), String> {
    let doc = document(xml, "DescribeInstancesResponse")?;
    let root = doc.root_element();
    let mut instances = Vec::new();
    if let Some(reservations) = child(root, "reservationSet") {
        for reservation in children(reservations, "item") {
            let Some(set) = child(reservation, "instancesSet") else {
                continue;
            };
            for item in children(set, "item") {
                let id = text(item, "instanceId").ok_or("an instance without an id")?;
                let launch_us = text(item, "launchTime")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_micros());
                instances.push(Ec2Instance {
                    id: id.to_owned(),
                    private_ip: text(item, "privateIpAddress").map(str::to_owned),
                    public_ip: text(item, "ipAddress").map(str::to_owned),
                    private_dns: text(item, "privateDnsName").map(str::to_owned),
                    launch_us,
                });
            }
        }
    }
    Ok((instances, text(root, "nextToken").map(str::to_owned)))
}

/// An AWS error document: Auto Scaling's `<ErrorResponse><Error>` or EC2's
/// `<Response><Errors><Error>`. `None` when the body is neither (a proxy's HTML page).
fn parse_error(xml: &str) -> Option<AwsError> {
    let doc = Document::parse(xml).ok()?;
    let error = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    let code = text(error, "Code")?;
    Some(AwsError {
        code: code.to_owned(),
        message: text(error, "Message").unwrap_or("(no message)").to_owned(),
    })
}

/// A checked `url_template`: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlTemplate(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    PrivateIp,
    PublicIp,
    PrivateDns,
    InstanceId,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::PrivateIp,
        Field::PublicIp,
        Field::PrivateDns,
        Field::InstanceId,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::PrivateIp => "private_ip",
            Field::PublicIp => "public_ip",
            Field::PrivateDns => "private_dns",
            Field::InstanceId => "instance_id",
        }
    }

    fn value(self, instance: &Ec2Instance) -> Option<&str> {
        match self {
            Field::PrivateIp => instance.private_ip.as_deref(),
            Field::PublicIp => instance.public_ip.as_deref(),
            Field::PrivateDns => instance.private_dns.as_deref(),
            Field::InstanceId => Some(instance.id.as_str()).filter(|id| !id.is_empty()),
        }
    }
}

impl UrlTemplate {
    fn parse(template: &str) -> Result<Self, String> {
        let known = || {
            Field::ALL
                .iter()
                .map(|f| format!("{{{}}}", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("url_template {template:?}: a '{{' is never closed"))?;
            let name = &after[..close];
            let field = Field::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!(
                        "url_template {template:?}: unknown placeholder {{{name}}}; known: {}",
                        known()
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!(
                "url_template {template:?}: a '}}' without its '{{'"
            ));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return Err(format!(
                "url_template {template:?} has no placeholder, so every instance would get \
                 the same URL; use one of {}",
                known()
            ));
        }
        let parsed = UrlTemplate(parts);
        // Filled with sample values, it must be an http(s) URL.
        let sample = Ec2Instance {
            id: "i-0123456789abcdef0".into(),
            private_ip: Some("10.0.0.1".into()),
            public_ip: Some("203.0.113.1".into()),
            private_dns: Some("ip-10-0-0-1.ec2.internal".into()),
            launch_us: None,
        };
        let filled = parsed
            .fill(&sample)
            .map_err(|f| format!("url_template: {f}"))?;
        match Url::parse(&filled) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(parsed),
            Ok(url) => Err(format!(
                "url_template {template:?}: scheme {:?}, expected http or https",
                url.scheme()
            )),
            Err(e) => Err(format!(
                "url_template {template:?} does not make a URL (e.g. {filled:?}: {e})"
            )),
        }
    }

    /// The instance's URL; `Err` names the placeholder the instance has no value for.
    fn fill(&self, instance: &Ec2Instance) -> Result<String, &'static str> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(field.value(instance).ok_or(field.name())?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
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
                message:
                    "Instance Id not found - No managed instance found for instance ID: i-0zzz"
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
}
