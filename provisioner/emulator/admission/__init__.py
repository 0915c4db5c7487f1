"""What a request passes before the emulator reads its body: the signature
(:mod:`~provisioner.emulator.admission.signature`, with the nonce rules of the profile) and
the rate limit per app key and endpoint (:mod:`~provisioner.emulator.admission.ratelimit`)."""
