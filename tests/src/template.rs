//! `template.yaml` as the tests read it: routes and IAM actions per function.

use std::collections::BTreeSet;

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

    /// Every action the function's `Policies` statements allow.
    pub fn actions(&self, function: &str) -> BTreeSet<String> {
        let resource = &self.0["Resources"][function];
        let mut actions = BTreeSet::new();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                if statement["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                match &statement["Action"] {
                    Value::String(a) => {
                        actions.insert(a.clone());
                    }
                    Value::Sequence(list) => actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned))),
                    _ => {}
                }
            }
        }
        actions
    }
}

/// Where `template.yaml`'s policies and the functions' declared actions disagree, and, given
/// what each function performed in the suite (`function → actions`), where the code does.
pub fn policy_problems(
    functions: &[&hatched::endpoint::Endpoint],
    performed: Option<&std::collections::BTreeMap<String, BTreeSet<String>>>,
) -> Vec<String> {
    let template = Template::load();
    let mut problems = Vec::new();
    for e in functions {
        let Some(resource) = template.function(e.function) else {
            problems.push(format!("template.yaml has no function building {}", e.function));
            continue;
        };
        let granted = template.actions(&resource);
        let declared: BTreeSet<String> = e.aws.iter().map(|a| a.to_string()).collect();
        for action in declared.difference(&granted) {
            problems.push(format!("{resource} needs {action} (declared by {})", e.function));
        }
        let Some(performed) = performed else {
            for action in granted.difference(&declared) {
                problems.push(format!("{resource} is granted {action}, which {} does not declare", e.function));
            }
            continue;
        };
        let done = performed.get(e.function).cloned().unwrap_or_default();
        for action in &done {
            if !granted.contains(action) {
                problems.push(format!("{resource} needs {action} (performed in the end-to-end suite)"));
            }
            if !declared.contains(action) {
                problems.push(format!("{} performs {action} but its ENDPOINT does not declare it", e.function));
            }
        }
        for action in granted.difference(&done) {
            if !declared.contains(action) {
                problems.push(format!("{resource} is granted {action}, which it never uses and does not declare"));
            }
        }
        if done.is_empty() && !e.aws.is_empty() {
            problems.push(format!("no AWS call of {} was recorded: is it exercised by the suite?", e.function));
        }
    }
    problems
}
