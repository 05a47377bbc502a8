#
# Copyright (c) nexB Inc. and others. All rights reserved.
# SPDX-License-Identifier: Apache-2.0 AND MIT
# See http://www.apache.org/licenses/LICENSE-2.0 for the license text.
# See https://github.com/nexB/debian-inspector for support or download.
# See https://aboutcode.org for more information about nexB OSS projects.
# Copyright (c) 2018 Peter Odding
# Author: Peter Odding <peter@peterodding.com>
# URL: https://github.com/xolox/python-deb-pkg-tools

from collections.abc import Mapping
from collections.abc import MutableMapping
from collections.abc import Sequence
import email
import io
import re
import textwrap

from attr import attrs
from attr import attrib
import chardet

from debian_inspector import unsign

"""
Utilities to parse Debian-style control files aka. deb822 format.

See https://salsa.debian.org/dpkg-team/dpkg/blob/0c9dc4493715ff3b37262528055943c52fdfb99c/man/deb822.man

https://www.debian.org/doc/debian-policy/ch-controlfields#s-f-Description

This is an alternative to a subset of python-debian library with these
characteristics:

 - We use a lenient parsing accepting things that would not be considered
   strictly Debian-compliant.
 - The focus is first on reading Debian files and writing them second.
 - Copyright, package, control and status files are the most interesting formats.
   Changelog and other Debian file types are mostly ignored for now.
 - There is no attention paid to compatibility and support for older formats