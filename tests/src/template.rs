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
