functions::lambda_main!(create_key);
