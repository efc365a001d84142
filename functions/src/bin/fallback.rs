functions::lambda_main!(without_app: functions::fallback::handle);
