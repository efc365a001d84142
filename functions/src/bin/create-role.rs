functions::lambda_main!(create_role);
