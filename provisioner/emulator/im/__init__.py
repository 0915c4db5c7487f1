"""RongCloud's IM server API beyond the bot API: users (``/user/getToken.json``), one-to-one
messages (``/message/private/publish.json``) and what a message to a bot fires."""
