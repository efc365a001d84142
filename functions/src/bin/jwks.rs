functions::lambda_main!(jwks, preload: verifier);
