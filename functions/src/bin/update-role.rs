functions::lambda_main!(update_role);
