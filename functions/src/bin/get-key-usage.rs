functions::lambda_main!(get_key_usage);
