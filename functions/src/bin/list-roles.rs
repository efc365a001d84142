functions::lambda_main!(list_roles);
