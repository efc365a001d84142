functions::lambda_main!(revoke_widget_session);
