"""ryu-sched: multi-tenant SDN controller app with an agent registry and scheduler."""

from setuptools import find_packages, setup

setup(
    name="ryu-sched",
    version="0.1.0",
    description="OpenFlow controller app (os-ken/Ryu) with a Neutron v2.0 API, an agent "
                "registry, load-aware scheduling and automatic failover",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # flows/ and agents/ stay at the top of the repository but install inside the project's
    # namespace, so that no other distribution's `flows` or `agents` can collide with them.
    packages=[*find_packages(include=["ryu_sched", "ryu_sched.*"]),
              "ryu_sched.flows", "ryu_sched.agents"],
    package_dir={"ryu_sched.flows": "flows", "ryu_sched.agents": "agents"},
    # The migration scripts are modules of ryu_sched.db.migrations, its template is data.
    package_data={"ryu_sched": ["py.typed", "observability/static/*"],
                  "ryu_sched.db.migrations": ["script.py.mako"]},
    data_files=[("etc/ryu-sched", ["etc/ryu_sched.conf.sample"])],
    install_requires=[
        # The default framework. A hard requirement: pip has no default extras, and
        # `pip install ryu-sched` must bring a framework. Ryu deployments get it too, unused.
        "os-ken>=3.1,<4",
        "eventlet>=0.33",
        "msgpack>=1.0",
        "sqlalchemy>=2.0",
        "alembic>=1.13",
        "webob>=1.8",
        "oslo.config>=9.0",
        # auth_strategy = keystone: token validation by auth_token, as Neutron does.
        "keystonemiddleware>=10.0",
        "prometheus-client>=0.17",
    ],
    extras_require={
        # Install Ryu first with PIP_CONSTRAINT=etc/constraints-ryu.txt (README, "Ryu 4.34
        # or os-ken"): its setup.py needs setuptools<58. This extra then pins the version.
        "ryu": ["ryu==4.34"],
        # connection = postgresql+psycopg://... (docs/operations.md)
        "postgresql": ["psycopg[binary]>=3.1"],
        "test": [
            "psycopg[binary]>=3.1",
            "pytest>=8",
            "hypothesis>=6",
            "openstacksdk>=3",
            "python-openstackclient>=6",
            # openstacksdk's own functional tests, run against the controller, need these
            "fixtures>=4",
            "testtools>=2.5",
            "oslotest>=5",
            "ruff>=0.5",
            "import-linter>=2.0",
            "selenium>=4.20",
        ],
    },
    entry_points={
        "console_scripts": [
            "ryu-sched-controller=ryu_sched.launcher:main",
            "ryu-sched-db-manage=ryu_sched.db.manage:main",
            "ryu-sched-dhcp-agent=ryu_sched.agents.dhcp_agent:main",
            "ryu-sched-l3-agent=ryu_sched.agents.l3_agent:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: System :: Networking",
    ],
)
