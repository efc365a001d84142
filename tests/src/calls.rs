//! Counts DynamoDB round trips by recording each attempt's operation (`x-amz-target`).

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug, Clone, Default)]
pub struct CallLog {
    ops: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    pub fn clear(&self) {
        self.ops.lock().unwrap().clear();
    }

    /// Operations sent since the last clear, e.g. `["GetItem", "UpdateItem"]`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

/// Operations that read the table (as opposed to rate-window and bookkeeping writes).
pub const READS: &[&str] = &["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"];

pub fn reads(ops: &[String]) -> usize {
    ops.iter().filter(|o| READS.contains(&o.as_str())).count()
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.ops.lock().unwrap().push(op);
        Ok(())
    }
}
