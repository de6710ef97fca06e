"""Go's %#v of internal structs (validation/rules/gostruct.py), as a Job's immutable-template error
prints them; the whole PodTemplateSpec form is checked by the kube-validation corpus case
job-template-change."""

from __future__ import annotations

from runtime.apiserver.validation.rules.gostruct import go_struct


def test_nil_empty_and_set_values_print_as_go_does() -> None:
    assert go_struct(None, "[]string") == "[]string(nil)"
    assert go_struct([], "[]string") == "[]string{}"
    assert go_struct(["a", "b"], "[]string") == '[]string{"a", "b"}'
    assert go_struct({"b": "2", "a": "1"}, "map[string]string") == 'map[string]string{"a":"1", "b":"2"}'
    assert go_struct(None, "*int64") == "(*int64)(nil)"
    assert go_struct(30, "*int64").startswith("(*int64)(0xc")
    assert go_struct(None, "*v1.Time") == "<nil>"
    assert go_struct(None, "v1.Time") == "time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)"
    assert (
        go_struct("2024-03-01T02:03:04Z", "v1.Time") == "time.Date(2024, time.March, 1, 2, 3, 4, 0, time.UTC)"
    )


def test_structs_list_every_field_in_order() -> None:
    port = go_struct({"containerPort": 80, "protocol": "TCP"}, "core.ContainerPort")
    assert port == 'core.ContainerPort{Name:"", HostPort:0, ContainerPort:80, Protocol:"TCP", HostIP:""}'
    vol = go_struct({"name": "v", "emptyDir": {}}, "core.Volume")
    assert vol.startswith(
        'core.Volume{Name:"v", VolumeSource:core.VolumeSource{HostPath:(*core.HostPathVolumeSource)(nil), '
    )
    assert "EmptyDir:(*core.EmptyDirVolumeSource)(0xc" in vol
    assert vol.endswith("Ephemeral:(*core.EphemeralVolumeSource)(nil)}}")
