"""Who may do what: the policy table and its enforcement, RBAC policies."""
