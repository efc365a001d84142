functions::lambda_main!(create_widget_session, preload: signer);
