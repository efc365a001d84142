functions::lambda_main!(get_role);
