functions::lambda_main!(create_portal_session, preload: signer);
