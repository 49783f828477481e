//! The Query APIs' answers, read with `roxmltree` by pure functions: groups and their members,
//! instances, and AWS's error documents.

use roxmltree::{Document, Node};

/// An instance as `DescribeAutoScalingGroups` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupMember {
    pub(super) id: String,
    pub(super) group: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GroupsPage {
    /// The names of the groups in this page, members or not.
    pub(super) groups: Vec<String>,
    /// Their in-service members.
    pub(super) members: Vec<GroupMember>,
    pub(super) next_token: Option<String>,
}

/// What EC2 says of an instance, as far as the URL template and the start time need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Ec2Instance {
    pub(super) id: String,
    pub(super) private_ip: Option<String>,
    pub(super) public_ip: Option<String>,
    pub(super) private_dns: Option<String>,
    pub(super) launch_us: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct AwsError {
    pub(super) code: String,
    pub(super) message: String,
}

pub(super) fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

pub(super) fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of a child element; `None` when absent or empty.
pub(super) fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Parses the document and checks that its root is `expected`.
pub(super) fn document<'i>(xml: &'i str, expected: &str) -> Result<Document<'i>, String> {
    let doc = Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element().tag_name().name();
    if root != expected {
        return Err(format!("expected <{expected}>, got <{root}>"));
    }
    Ok(doc)
}

pub(super) fn parse_groups(xml: &str) -> Result<GroupsPage, String> {
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
pub(super) fn parse_autoscaling_instances(xml: &str) -> Result<Vec<(String, String)>, String> {
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
pub(super) fn parse_ec2_instances(xml: &str) -> Result<(Vec<Ec2Instance>, Option<String>), String> {
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
pub(super) fn parse_error(xml: &str) -> Option<AwsError> {
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
