functions::lambda_main!(list_keys);
