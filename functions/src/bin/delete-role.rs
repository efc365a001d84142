functions::lambda_main!(delete_role);
