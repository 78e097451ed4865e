"""The declarative conformance fixtures (worker/tools/fixtures/resources.json, prompts.json)
through MCP: listed only with mcp.conformance_fixtures, template and prompt arguments
substituted (JSON-escaped), a missing prompt argument refused with -32602 naming it."""
import json

import lib


class Fixtures(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, fixtures=True).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    def test_resources_and_template(self):
        res = {r["uri"]: r for r in self.s.request("resources/list")["resources"]}
        self.assertEqual(sorted(res), ["test://static-binary", "test://static-text",
                                       "test://watched-resource"])
        self.assertEqual(res["test://static-binary"]["mimeType"], "image/png")
        out = self.s.request("resources/read", {"uri": "test://static-text"})["contents"]
        self.assertEqual(out, [{"uri": "test://static-text", "mimeType": "text/plain",
                                "text": "This is the content of the static text resource."}])
        tpl = self.s.request("resources/templates/list")["resourceTemplates"]
        self.assertEqual([t["uriTemplate"] for t in tpl], ["test://template/{id}/data"])
        uri = 'test://template/a"b/data'
        c = self.s.request("resources/read", {"uri": uri})["contents"][0]
        self.assertEqual(c["uri"], uri)
        self.assertEqual(json.loads(c["text"]),
                         {"id": 'a"b', "templateTest": True, "data": 'Data for ID: a"b'})
        with self.assertRaises(lib.McpError) as e:
            self.s.request("resources/read", {"uri": "test://template/a/b/data"})
        self.assertEqual(e.exception.code, -32002)

    def test_prompts(self):
        prompts = {p["name"]: p for p in self.s.request("prompts/list")["prompts"]}
        # the conformance suite's four, plus the 2026-07-28 input-required one (issue 19)
        self.assertEqual(sorted(prompts), ["test_input_required_result_prompt",
                                           "test_prompt_with_arguments",
                                           "test_prompt_with_embedded_resource",
                                           "test_prompt_with_image", "test_simple_prompt"])
        self.assertEqual([a["name"] for a in prompts["test_prompt_with_arguments"]["arguments"]],
                         ["arg1", "arg2"])
        r = self.s.request("prompts/get", {"name": "test_prompt_with_arguments",
                                           "arguments": {"arg1": "x'\"y", "arg2": "é"}})
        self.assertEqual(r["messages"][0]["content"]["text"],
                         "Prompt with arguments: arg1='x'\"y', arg2='é'")
        r = self.s.request("prompts/get", {"name": "test_prompt_with_embedded_resource",
                                           "arguments": {"resourceUri": "test://static-text"}})
        self.assertEqual(r["messages"][0]["content"]["resource"]["uri"], "test://static-text")
        with self.assertRaises(lib.McpError) as e:
            self.s.request("prompts/get", {"name": "test_prompt_with_arguments",
                                           "arguments": {"arg1": "x"}})
        self.assertEqual(e.exception.code, -32602)
        self.assertIn("argument arg2 (string) is required", e.exception.message)


class NoFixtures(lib.TestCase):
    def test_not_served_without_the_setting(self):
        with lib.Csmcpd(workers=1) as d:
            s = d.session()
            try:
                self.assertEqual(s.request("prompts/list")["prompts"], [])
                self.assertEqual(s.request("resources/list")["resources"], [])
                names = [t["name"] for t in s.request("tools/list")["tools"]]
                self.assertNotIn("test_simple_text", names)
                self.assertNotIn("test_action_scopes", names)
            finally:
                s.close()
