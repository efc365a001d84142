functions::lambda_main!(list_permissions);
