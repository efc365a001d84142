functions::lambda_main!(revoke_key);
