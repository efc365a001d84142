functions::lambda_main!(list_audit_events);
