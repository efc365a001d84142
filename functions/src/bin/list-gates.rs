functions::lambda_main!(list_gates);
