functions::lambda_main!(validate_key);
