//! `template.yaml` as the tests read it: routes and IAM actions per function.

use std::collections::BTreeSet;

use hatched::endpoint::Grant;
use serde_yaml_ng::Value;

pub fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub struct Template(Value);

impl Template {
    pub fn load() -> Template {
        Template(serde_yaml_ng::from_str(&repo_file("template.yaml")).expect("template.yaml parses"))
    }

    fn functions(&self) -> impl Iterator<Item = (String, &Value)> {
        self.0["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), r))
    }

    /// The logical id of the function that builds `binary`.
    pub fn function(&self, binary: &str) -> Option<String> {
        self.functions()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .map(|(id, _)| id)
    }

    /// (method, path, binary) of every HttpApi event; `$default` for the catch-all.
    pub fn routes(&self) -> BTreeSet<(String, String, String)> {
        let mut routes = BTreeSet::new();
        for (id, resource) in self.functions() {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} names no binary"))
                .to_owned();
            assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
            for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
                if event["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let props = &event["Properties"];
                let method = props["Method"].as_str().unwrap_or("$default").to_owned();
                let path = props["Path"].as_str().unwrap_or("$default").to_owned();
                routes.insert((method, path, binary.clone()));
            }
        }
        routes
    }

    /// Every (action, partition) the function's `Policies` statements allow: DynamoDB actions
    /// per `dynamodb:LeadingKeys` pattern (`*` when a statement does not scope them), other
    /// services' actions with `-`.
    pub fn actions(&self, function: &str) -> BTreeSet<String> {
        let resource = &self.0["Resources"][function];
        let mut granted = BTreeSet::new();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                if statement["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                let actions: Vec<String> = match &statement["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Sequence(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                    _ => vec![],
                };
                let leading = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                let partitions: Vec<String> = match leading.as_sequence() {
                    Some(list) => {
                        list.iter().filter_map(|p| p.as_str().map(|p| p.trim_end_matches('*').to_owned())).collect()
                    }
                    None => vec!["*".to_owned()],
                };
                for action in actions {
                    if action.starts_with("dynamodb:") {
                        granted.extend(partitions.iter().map(|p| format!("{action} {p}")));
                    } else {
                        granted.insert(format!("{action} -"));
                    }
                }
            }
        }
        granted
    }
}

/// Every deployed function and what it declares it may do in AWS: the routed endpoints, the
/// fallback, and the workers (authorizer, …).
pub fn functions() -> Vec<(&'static str, &'static [Grant])> {
    endpoints::ENDPOINTS
        .iter()
        .chain([&&fallback::ENDPOINT])
        .map(|e| (e.function, e.aws))
        .chain(endpoints::OTHER_FUNCTIONS.iter().map(|w| (w.function, w.aws)))
        .collect()
}

/// What a function declares, in the form of [`Template::actions`].
pub fn declared(aws: &[Grant]) -> BTreeSet<String> {
    aws.iter()
        .flat_map(|g| match g.partitions {
            [] => vec![format!("{} -", g.action)],
            partitions => partitions.iter().map(|p| format!("{} {p}", g.action)).collect(),
        })
        .collect()
}

/// Where `template.yaml`'s policies and the functions' declared actions disagree, and, given
/// what each function performed in the suite (`function → actions`), where the code does.
pub fn policy_problems(performed: Option<&std::collections::BTreeMap<String, BTreeSet<String>>>) -> Vec<String> {
    let template = Template::load();
    let mut problems = Vec::new();
    for (function, aws) in functions() {
        let Some(resource) = template.function(function) else {
            problems.push(format!("template.yaml has no function building {function}"));
            continue;
        };
        let granted = template.actions(&resource);
        let declared = declared(aws);
        for action in declared.difference(&granted) {
            problems.push(format!("{resource} needs {} (declared by {})", on(action), function));
        }
        let Some(performed) = performed else {
            for action in granted.difference(&declared) {
                problems.push(format!("{resource} is granted {}, which {} does not declare", on(action), function));
            }
            continue;
        };
        let done = performed.get(function).cloned().unwrap_or_default();
        for action in &done {
            if !granted.contains(action) {
                problems.push(format!("{resource} needs {} (performed in the end-to-end suite)", on(action)));
            }
            if !declared.contains(action) {
                problems.push(format!("{} performs {} but its ENDPOINT does not declare it", function, on(action)));
            }
        }
        for action in granted.difference(&done) {
            if !declared.contains(action) {
                problems
                    .push(format!("{resource} is granted {}, which it never uses and does not declare", on(action)));
            }
        }
        if done.is_empty() && !aws.is_empty() {
            problems.push(format!("no AWS call of {} was recorded: is it exercised by the suite?", function));
        }
    }
    problems
}

/// `dynamodb:GetItem KEY#` → `dynamodb:GetItem on KEY#…`; `* ` means every partition.
fn on(pair: &str) -> String {
    match pair.split_once(' ') {
        Some((action, "-")) => action.to_owned(),
        Some((action, "*")) => format!("{action} on every partition (no dynamodb:LeadingKeys)"),
        Some((action, partition)) => format!("{action} on {partition}…"),
        None => pair.to_owned(),
    }
}
