functions::lambda_main!(introspect_token, preload: verifier);
