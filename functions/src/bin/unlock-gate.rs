functions::lambda_main!(unlock_gate);
