//! `template.yaml` as the tests read it: routes and IAM actions per function. The template's
//! policies are the one statement of what each function may do in AWS; the checks here hold
//! them to their form (every DynamoDB statement scoped to known partitions) and, given what the
//! suite performed, to the code (every action granted, every grant used).

use std::collections::{BTreeMap, BTreeSet};

use hatched::store::partition;
use serde_yaml_ng::Value;

/// Every table partition (`pk` prefix) a policy may name.
pub const PARTITIONS: &[&str] = &[
    partition::KEY,
    partition::PREFIX,
    partition::CUSTOMER,
    partition::BUDDY,
    partition::SESSION,
    partition::RATE_WINDOW,
    partition::ROLE,
    partition::AUDIT,
    partition::REVOCATION,
    partition::SIGNING,
    partition::USAGE,
];

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
    /// per `dynamodb:LeadingKeys` pattern (`*` when a statement does not scope them; `@gsi1`
    /// added when the statement's resource is that index), other services' actions with `-`.
    pub fn actions(&self, function: &str) -> BTreeSet<String> {
        self.statements(function).into_iter().flat_map(|s| s.grants()).collect()
    }

    /// The `Allow` statements of the function's `Policies`.
    pub fn statements(&self, function: &str) -> Vec<Statement> {
        let resource = &self.0["Resources"][function];
        let mut statements = Vec::new();
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
                let partitions = leading.as_sequence().map(|list| {
                    list.iter().filter_map(|p| p.as_str().map(|p| p.trim_end_matches('*').to_owned())).collect()
                });
                let resource = serde_yaml_ng::to_string(&statement["Resource"]).unwrap_or_default();
                let index = resource
                    .split_once("/index/")
                    .map(|(_, rest)| rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
                statements.push(Statement { actions, partitions, index, resource });
            }
        }
        statements
    }
}

/// One `Allow` statement of a function's policy, as the checks read it.
#[derive(Debug)]
pub struct Statement {
    pub actions: Vec<String>,
    /// The `dynamodb:LeadingKeys` patterns without their `*`; `None` when not scoped.
    pub partitions: Option<Vec<String>>,
    /// The index, when the resource is `${HatchedTable.Arn}/index/<index>`.
    pub index: Option<String>,
    /// The resource as written (YAML).
    pub resource: String,
}

impl Statement {
    fn grants(&self) -> Vec<String> {
        let partitions = self.partitions.clone().unwrap_or_else(|| vec!["*".to_owned()]);
        let mut grants = Vec::new();
        for action in &self.actions {
            if action.starts_with("dynamodb:") {
                grants.extend(partitions.iter().map(|p| match &self.index {
                    Some(index) => format!("{action} {p}@{index}"),
                    None => format!("{action} {p}"),
                }));
            } else {
                grants.push(format!("{action} -"));
            }
        }
        grants
    }
}

/// Every deployed function's binary: the routed endpoints, the fallback, and the functions no
/// route reaches (authorizer, rotation).
pub fn functions() -> Vec<&'static str> {
    ::functions::all_functions()
}

/// Where `template.yaml`'s policies break their form: a function without a template entry, a
/// DynamoDB statement not scoped with `dynamodb:LeadingKeys`, scoped to a partition the store
/// does not have, on a resource other than the table or its index, or on the index with an
/// action other than `Query`. Given what each function performed in the suite (`function →
/// actions`), also where the policies and the code disagree, both ways: an action performed
/// but not granted (the deployed function would fail), a grant never performed (a policy
/// broader than the code).
pub fn policy_problems(performed: Option<&BTreeMap<String, BTreeSet<String>>>) -> Vec<String> {
    let template = Template::load();
    let mut problems = Vec::new();
    for function in functions() {
        let Some(resource) = template.function(function) else {
            problems.push(format!("template.yaml has no function building {function}"));
            continue;
        };
        for statement in template.statements(&resource) {
            if !statement.actions.iter().any(|a| a.starts_with("dynamodb:")) {
                continue;
            }
            match &statement.partitions {
                None => problems
                    .push(format!("{resource}: {:?} is not scoped with dynamodb:LeadingKeys", statement.actions)),
                Some(partitions) => {
                    for p in partitions.iter().filter(|p| !PARTITIONS.contains(&p.as_str())) {
                        problems
                            .push(format!("{resource}: {:?} names {p:?}, which is no partition", statement.actions));
                    }
                }
            }
            let on_table = statement.resource.contains("HatchedTable.Arn");
            match &statement.index {
                _ if !on_table => problems.push(format!(
                    "{resource}: {:?} on {}, not the table or its index",
                    statement.actions,
                    statement.resource.trim()
                )),
                Some(_) if statement.actions.iter().any(|a| a != "dynamodb:Query") => problems
                    .push(format!("{resource}: only dynamodb:Query reads an index, not {:?}", statement.actions)),
                _ => {}
            }
        }
        let Some(performed) = performed else { continue };
        let granted = template.actions(&resource);
        let done = performed.get(function).cloned().unwrap_or_default();
        for action in done.difference(&granted) {
            problems.push(format!("{resource} needs {} (performed in the end-to-end suite)", on(action)));
        }
        for action in granted.difference(&done) {
            // moto refuses a PutSecretValue without a value (what RotateSecret leaves before it
            // calls createSecret), so there the operator prepares the token and the rotation
            // function's own createSecret never puts (README, "Tokens and signing keys").
            let moto = std::env::var("HATCHED_EMULATOR_NOW").as_deref() == Ok("moto");
            if moto && function == "rotate-signing-key" && action.starts_with("secretsmanager:PutSecretValue") {
                continue;
            }
            problems.push(format!(
                "{resource} is granted {}, which {function} never performed in the end-to-end suite \
                 (exercise it in a test, or drop the grant)",
                on(action)
            ));
        }
    }
    problems
}

/// `dynamodb:GetItem KEY#` → `dynamodb:GetItem on KEY#…`; `* ` means every partition, `@gsi1`
/// the index.
fn on(pair: &str) -> String {
    match pair.split_once(' ') {
        Some((action, "-")) => action.to_owned(),
        Some((action, "*")) => format!("{action} on every partition (no dynamodb:LeadingKeys)"),
        Some((action, partition)) => match partition.split_once('@') {
            Some((partition, index)) => format!("{action} on {partition}… of the index {index}"),
            None => format!("{action} on {partition}…"),
        },
        None => pair.to_owned(),
    }
}
