//! IAM follows the code, both ways, partition by partition: every AWS action a function
//! performed in the end-to-end suite (recorded by `hatched_tests::calls::ActionLog` into
//! `$HATCHED_AWS_ACTIONS`) must be granted by its policy in `template.yaml`, the one place
//! IAM is written; every granted (action, partition) must have been performed at least once
//! (an unused grant is a policy broader than the code: exercise it in a test or drop it).
//! `scripts/test` runs this after the suite (`cargo test --test iam`); it is not part of a
//! plain `cargo test`, which has no record yet.

use std::collections::{BTreeMap, BTreeSet};

use hatched_tests::calls::ACTIONS_FILE_ENV;
use hatched_tests::template::{functions, policy_problems};

fn performed() -> BTreeMap<String, BTreeSet<String>> {
    let path = std::env::var(ACTIONS_FILE_ENV)
        .unwrap_or_else(|_| panic!("{ACTIONS_FILE_ENV} is not set: scripts/test records the suite's AWS calls there"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut performed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (function, action) = line.split_once(' ').unwrap_or_else(|| panic!("{path}: bad line {line:?}"));
        performed.entry(function.to_owned()).or_default().insert(action.to_owned());
    }
    performed
}

#[test]
fn every_performed_action_is_granted_and_every_grant_is_used() {
    let performed = performed();
    let functions = functions();
    let mut problems: Vec<String> = performed
        .keys()
        .filter(|f| !functions.contains(&f.as_str()))
        .map(|f| format!("the suite recorded calls of {f}, which is no function"))
        .collect();
    problems.extend(policy_problems(Some(&performed)));
    assert!(problems.is_empty(), "IAM and code disagree:\n{}", problems.join("\n"));
}
