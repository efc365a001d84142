functions::lambda_main!(roll_key);
