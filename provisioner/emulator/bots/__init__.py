"""The bot API proper: the endpoints (:mod:`~provisioner.emulator.bots.api`) and the profile
that decides their answers where RongCloud's docs are silent
(:mod:`~provisioner.emulator.bots.profile`)."""
