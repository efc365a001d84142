functions::lambda_main!(portal_asset);
