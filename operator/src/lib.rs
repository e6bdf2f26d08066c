//! The kube-dmvpn operator.
