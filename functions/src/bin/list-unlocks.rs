functions::lambda_main!(list_unlocks);
