-- neutralized copies must not sign WeChat Pay requests nor push messages
UPDATE payment_provider
   SET wechatpay_private_key = NULL,
       wechatpay_apiv3_key = NULL,
       wechatpay_app_secret = NULL,
       wechatpay_oa_token = NULL;
