functions::lambda_main!(create_embed_token, preload: signer);
