"""provisioner: declarative GitOps for RongCloud IM chat bots.

The pipeline, one module per stage (see README and ../shared/DESIGN.md):

    bots/<app>/*.yaml --manifest--> Document (values + file:line:col)
        --validate--> JSON Schema + pydantic models + cross-file rules --> DesiredApp
    recorded state (state/) --> RecordedApp
    live bots (rongcloud/, optional refresh) --> LiveApp
        --plan (pure)--> Plan --render--> text | markdown | json
        --apply--> signed calls, one state write after each successful call
"""

__version__ = "0.1.0"
