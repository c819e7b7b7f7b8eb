"""Engine replicas on Ray Serve (``tether serve --replicas N``): docs/cluster.md.

- ``calls``: what the ingress sends a replica and what comes back (plain frozen values, no Ray);
- ``replica``: ``EngineReplica``, the Serve deployment's class: one engine and the server's request handling;
- ``routing``: the routers as Ray Serve ``RequestRouter`` subclasses, and the registry the ingress reads them in
  (imports Ray); ``request_routers``: the leaf classes Ray deploys, by name;
- ``metrics``: the cluster's ``/metrics``, summed over the replicas;
- ``ingress``: the OpenAI-compatible app in front of the replicas, and its fault handling;
- ``launch``: starting or joining a Ray cluster and deploying the replicas (imports Ray).
"""
