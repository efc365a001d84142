//! A checker of CloudWatch's Embedded Metric Format specification, for the log lines the
//! functions write: what CloudWatch would extract, or silently drop (a line that breaks the
//! spec is kept as a log and yields no metric — nothing else would tell).
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde_json::Value;

/// The units CloudWatch accepts (the `StandardUnit` enumeration).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric series: namespace, dimension names, metric name.
pub type Series = (String, Vec<String>, String);

/// The metrics a valid EMF line yields: `(namespace, dimension names, metric name)`; an error
/// names the first rule the line breaks.
pub fn check(line: &Value) -> Result<Vec<Series>, String> {
    let root = line.as_object().ok_or("the root is not an object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    let timestamp = aws.get("Timestamp").ok_or("no _aws.Timestamp")?;
    if !timestamp.is_u64() {
        return Err(format!("_aws.Timestamp {timestamp} is not milliseconds since the epoch"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no _aws.CloudWatchMetrics array")?;
    let mut yielded = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"].as_str().ok_or("a directive without a Namespace string")?;
        if namespace.trim().is_empty() || namespace.len() > 1024 {
            return Err(format!("namespace {namespace:?} is empty or too long"));
        }
        let sets = directive["Dimensions"].as_array().ok_or("a directive without a Dimensions array")?;
        let mut dimension_sets = Vec::new();
        for set in sets {
            let names = set.as_array().ok_or("a dimension set that is not an array")?;
            if names.len() > 30 {
                return Err("more than 30 dimensions in a set".into());
            }
            let mut dims = Vec::new();
            for name in names {
                let name = name.as_str().ok_or("a dimension name that is not a string")?;
                let value = root.get(name).ok_or(format!("dimension {name} has no member at the root"))?;
                let value = value.as_str().ok_or(format!("dimension {name}'s value is not a string"))?;
                if value.is_empty() || value.len() > 1024 {
                    return Err(format!("dimension {name}'s value is empty or longer than 1024"));
                }
                dims.push(name.to_owned());
            }
            dimension_sets.push(dims);
        }
        let metrics = directive["Metrics"].as_array().ok_or("a directive without a Metrics array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics in a directive".into());
        }
        for metric in metrics {
            let name = metric["Name"].as_str().ok_or("a metric without a Name string")?;
            let value = root.get(name).ok_or(format!("metric {name} has no member at the root"))?;
            let numeric = value.is_number()
                || value.as_array().is_some_and(|values| values.len() <= 100 && values.iter().all(Value::is_number));
            if !numeric {
                return Err(format!("metric {name}'s value {value} is not a number or an array of numbers"));
            }
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                return Err(format!("metric {name}'s unit {unit} is not a CloudWatch unit"));
            }
            if let Some(resolution) = metric.get("StorageResolution")
                && *resolution != 1
                && *resolution != 60
            {
                return Err(format!("metric {name}'s storage resolution {resolution} is neither 1 nor 60"));
            }
            for dims in &dimension_sets {
                yielded.push((namespace.to_owned(), dims.clone(), name.to_owned()));
            }
        }
    }
    Ok(yielded)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;

    fn good() -> serde_json::Value {
        json!({
            "_aws": { "Timestamp": 1_764_000_000_000u64, "CloudWatchMetrics": [{
                "Namespace": "N", "Dimensions": [["Function", "Outcome"], ["Outcome"]],
                "Metrics": [{ "Name": "Requests", "Unit": "Count" }, { "Name": "Latency", "Unit": "Milliseconds" }],
            }]},
            "Function": "f", "Outcome": "ok", "Requests": 1, "Latency": 2.5,
        })
    }

    #[test]
    fn a_valid_line_yields_each_metric_per_dimension_set() {
        assert_eq!(check(&good()).unwrap().len(), 4);
    }

    #[test]
    fn each_broken_rule_is_named() {
        type Break = fn(&mut serde_json::Value);
        let broken: [(&str, Break); 8] = [
            ("no _aws", |l| drop(l.as_object_mut().unwrap().remove("_aws"))),
            ("Timestamp", |l| l["_aws"]["Timestamp"] = json!("2026-12-02T00:00:00Z")),
            ("has no member", |l| drop(l.as_object_mut().unwrap().remove("Outcome"))),
            ("not a string", |l| l["Function"] = json!(7)),
            ("not a number", |l| l["Latency"] = json!("2.5")),
            ("not a CloudWatch unit", |l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"] = json!("ms")),
            ("Namespace", |l| drop(l["_aws"]["CloudWatchMetrics"][0].as_object_mut().unwrap().remove("Namespace"))),
            ("Dimensions array", |l| l["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!("Function")),
        ];
        for (rule, breaks) in broken {
            let mut line = good();
            breaks(&mut line);
            let err = check(&line).unwrap_err();
            assert!(err.contains(rule), "{rule}: {err}");
        }
    }
}
