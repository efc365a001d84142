functions::lambda_main!(portal_page);
