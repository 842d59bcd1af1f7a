"""The build farm: one scheduler job per engine key the registry lacks (Slurm batch scripts, Kubernetes
Indexed Jobs). Queueing, retries and GPU allocation stay the scheduler's; every job runs
``trtbuild build --locked`` against the shared registry, whose build leases keep one build per key.

``select`` plans recipes into jobs, ``base`` is the scheduler contract, ``slurm`` and ``kubernetes`` render
and submit, ``state`` keeps the job ids per key, ``api`` ties them together for ``trtbuild farm``.
"""
