functions::lambda_main!(update_key);
