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
use url::Url;

use super::{Provider, ProviderError, Replaced};
use crate::instance::Instance;

mod config;
mod errors;
mod template;
mod xml;

pub use config::{AwsConfig, RawAws};
use errors::{aws_url, failed, member_list, not_found, shown_endpoint, unreadable, with_causes};
use template::UrlTemplate;
use xml::{
    Ec2Instance, GroupMember, parse_autoscaling_instances, parse_ec2_instances, parse_error,
    parse_groups,
};

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

#[cfg(test)]
mod tests;
