"""The Dify stand-in: the part of Dify's Service API that RongCloud and `provisioner check` call."""
