functions::lambda_main!(without_app: functions::whoami::answer);
